-- Pages of resources in id order at any depth: for each list filter an index whose
-- entries are that filter's rows in id order, so a deep offset steps over small index
-- entries instead of whole rows, and no filter needs a sort.
CREATE INDEX resources_ids ON resources (id);
CREATE INDEX resources_by_type_name_id ON resources (resource_type_name, id);
